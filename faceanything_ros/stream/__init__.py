"""The stream of results the node, bag-eval and the CLI share; ROS-free.

``processing.FrameProcessor`` turns one image into a ``ProcessedFrame`` (reconstruction by the
model or the face-mesh method, face ids and head poses, canonical tracks), keeping the stream's
context (window, tracks, face ids) and resetting it when the camera (frame_id) or image size
changes; face ids come from the per-face tracker (``tracking.MultiFaceTracker``). ``method`` picks
the reconstruction method, ``head_pose`` fits the face frame, ``camera_info`` matches CameraInfo
messages to images, ``worker`` runs the node's two stage threads (newest-only inference, in-order
publishing), ``stats`` and ``health`` count and judge the stream, ``bounded`` caps stamp-keyed stores.
"""
