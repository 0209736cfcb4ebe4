"""Home Assistant MQTT discovery: one retained device message per band.

The device says its kind (the model, when the band names none) and a cue mode
entity says where the wearer gets the cues: ``band`` (its own clock), ``host``
(this host writes each cue to the motor) or ``screen`` (a strap: no motor).

Home Assistant (2024.12 and later) reads ``homeassistant/device/<id>/config``
and creates a device with one entity per component. Every entity reads the
relay's retained ``state`` topic (buttons write to ``cmd``) and follows the
``availability`` topic, so a crashed host shows every entity unavailable.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .. import __version__
from ..kinds import CAPABILITIES, Capabilities
from ..state import CueMode, DeviceInfo, SessionCommand, SessionPhase
from .class_topics import ClassTopics
from .topics import COMMANDS, OFFLINE, ONLINE, Topics

__all__ = [
    "DISCOVERY_ROOT",
    "class_discovery_payload",
    "class_discovery_topic",
    "discovery_payload",
    "discovery_topic",
]

DISCOVERY_ROOT: Final = "homeassistant"
_QOS: Final = 1  # not inherited from the device level: set on each component


def discovery_topic(band_id: str, root: str = DISCOVERY_ROOT) -> str:
    """The retained config topic; an empty retained payload there removes the device."""
    return f"{root}/device/companion_{band_id}/config"


def _sensor(key: str, name: str, template: str, **options: Any) -> dict[str, Any]:
    return {"p": "sensor", "name": name, "value_template": template, **options, "_key": key}


def _components(band_id: str, topics: Topics, features: Capabilities) -> dict[str, dict[str, Any]]:
    sensors = [
        _sensor(
            "heart_rate",
            "Heart rate",
            "{{ value_json.heart_rate }}",
            unit_of_measurement="bpm",
            state_class="measurement",
            icon="mdi:heart-pulse",
        ),
        _sensor("exercise", "Exercise", "{{ value_json.exercise }}", icon="mdi:run"),
        _sensor("tip", "Tip", "{{ value_json.tip }}", icon="mdi:lightbulb-outline"),
        _sensor("next", "Next exercise", "{{ value_json.next }}", icon="mdi:skip-next"),
        _sensor("round", "Round", "{{ value_json.round }}", icon="mdi:repeat"),
        _sensor(
            "time_left",
            "Time left",
            "{{ value_json.time_left_s }}",
            device_class="duration",
            unit_of_measurement="s",
        ),
        _sensor(
            "session_state",
            "Session state",
            "{{ value_json.state }}",
            device_class="enum",
            options=[phase.value for phase in SessionPhase],
        ),
        _sensor(
            "cue_mode",
            "Cue mode",
            "{{ value_json.cue_mode }}",
            device_class="enum",
            options=[mode.value for mode in CueMode],
            icon="mdi:vibrate" if features.motor else "mdi:bell-ring",
            entity_category="diagnostic",
        ),
        _sensor(
            "battery",
            "Battery",
            "{{ value_json.battery }}",
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
        ),
        {
            "p": "binary_sensor",
            "name": "Link",
            "device_class": "connectivity",
            "value_template": "{{ value_json.link }}",
            "payload_on": "up",
            "payload_off": "down",
            "_key": "link",
        },
    ]
    buttons = _buttons([c for c in COMMANDS if c is not SessionCommand.SKIP], topics.cmd)
    return _keyed(sensors + buttons, f"companion_{band_id}", topics.state)


def _buttons(commands: list[SessionCommand], cmd_topic: str) -> list[dict[str, Any]]:
    """A button per command, each publishing the command's name on ``cmd_topic``."""
    return [
        {
            "p": "button",
            "name": command.capitalize(),
            "command_topic": cmd_topic,
            "payload_press": command,
            "_key": command,
        }
        for command in commands
    ]


def _keyed(
    components: list[dict[str, Any]], unique: str, state_topic: str
) -> dict[str, dict[str, Any]]:
    """The components by key, each with its ids, QoS and (but buttons) the state topic."""
    keyed: dict[str, dict[str, Any]] = {}
    for component in components:
        key = component.pop("_key")
        component["unique_id"] = f"{unique}_{key}"
        component["default_entity_id"] = f"{component['p']}.{unique}_{key}"
        component["qos"] = _QOS
        if component["p"] != "button":
            component["state_topic"] = state_topic
        keyed[key] = component
    return keyed


def discovery_payload(device: DeviceInfo, topics: Topics) -> bytes:
    """The device discovery message for one band (retain it)."""
    band_id = device.band_id
    ha_device: dict[str, Any] = {
        "ids": [f"companion_{band_id}"],
        "name": device.name or f"Band {band_id}",
        "mf": device.manufacturer or "unknown",
        "mdl": device.model or device.kind.label,
        "sw": device.firmware or "unknown",
    }
    if device.serial:
        ha_device["sn"] = device.serial
    if device.address and ":" in device.address:
        ha_device["cns"] = [["bluetooth", device.address.lower()]]
    payload = {
        "dev": ha_device,
        "o": {"name": "companion", "sw": __version__},
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "cmps": _components(band_id, topics, CAPABILITIES[device.kind]),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def class_discovery_topic(class_id: str, root: str = DISCOVERY_ROOT) -> str:
    """A class's retained config topic; an empty retained payload there removes it."""
    return f"{root}/device/companion_class_{class_id}/config"


def class_discovery_payload(class_id: str, title: str, topics: ClassTopics) -> bytes:
    """The device discovery message for a class (retain it): its state, the exercise
    and what comes next, the round, the time left, the participants, and buttons that
    pause, resume, skip and stop it on every host.

    Every entity reads the class's retained ``state`` (the class screen's JSON);
    the participants sensor counts them and lists each one's name, bpm and zone
    as attributes.
    """
    unique = f"companion_class_{class_id}"
    sensors = [
        _sensor(
            "state",
            "Class state",
            "{{ value_json.phase }}",
            device_class="enum",
            options=[phase.value for phase in SessionPhase],
        ),
        _sensor("exercise", "Exercise", "{{ value_json.exercise }}", icon="mdi:run"),
        _sensor("next", "Next exercise", "{{ value_json.next_exercise }}", icon="mdi:skip-next"),
        _sensor("round", "Round", "{{ value_json.round }}", icon="mdi:repeat"),
        _sensor(
            "time_left",
            "Time left",
            "{{ value_json.step_remaining_s | round(0) }}",
            device_class="duration",
            unit_of_measurement="s",
        ),
        _sensor(
            "participants",
            "Participants",
            "{{ value_json.participants | length }}",
            icon="mdi:account-group",
            state_class="measurement",
            json_attributes_topic=topics.state,
            json_attributes_template=(
                "{{ {'participants': value_json.participants | map(attribute='name') | list,"
                " 'heart_rates': value_json.participants | map(attribute='heart_rate') | list,"
                " 'zones': value_json.participants | map(attribute='zone') | list} | tojson }}"
            ),
        ),
    ]
    # A class starts when every host is ready, not on a button.
    buttons = _buttons([c for c in COMMANDS if c is not SessionCommand.START], topics.cmd)
    components = _keyed(sensors + buttons, unique, topics.state)
    payload = {
        "dev": {"ids": [unique], "name": f"Class {title}", "mf": "companion", "mdl": "Group class"},
        "o": {"name": "companion", "sw": __version__},
        "cmps": components,
    }
    return json.dumps(payload, separators=(",", ":")).encode()
