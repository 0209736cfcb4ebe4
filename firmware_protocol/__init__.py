"""firmware_protocol: the companion band wire protocol, sans-I/O."""
