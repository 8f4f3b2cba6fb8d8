"""The numpy core shared by every backend: images, preprocessing, dictionaries, CTC, metrics, datasets.

Nothing here imports click, torch, onnxruntime or openvino.
"""
