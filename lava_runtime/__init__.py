"""lava_runtime"""
