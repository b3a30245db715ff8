"""``python -m faceanything_ros.ros.node [--lifecycle] --ros-args ...``."""
import sys

from faceanything_ros.ros.node.run import module_main

sys.exit(module_main())
