# What is wired where: edit this file for your board (see README.md).

NAME = "Companion"  # advertised name, at most 11 bytes
SERIAL = "MPY0001"
FIRMWARE = "1.0.0-mpy"

MOTOR_PIN = 13  # a vibration motor through a transistor (or a motor driver's input)
MOTOR_PWM_HZ = 200  # coin motors like 100..300 Hz; intensity is the duty cycle
BUTTON_PIN = 0  # a push button to ground (the BOOT button of most ESP32 boards)
BUTTON_ACTIVE_LOW = True
LONG_PRESS_MS = 1500  # a long press is PAIN, a short one STOP

PAIRING_CONFIRM_MS = 30000  # numeric comparison: press within this to accept
