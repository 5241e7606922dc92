"""A real paho-mqtt 2.x client (MQTT 3.1.1) that reports its connections.

``python -m stormcheck.conformance.stacks.peer_mqtt --ports P1,P2 --keepalive K --retry R --id ID``

The client declares keep-alive K (whole seconds, as MQTT has it) in its
CONNECT; paho's loop sends PINGREQ when nothing went out for K s and gives up
itself (``MQTT_ERR_KEEPALIVE``) when no PINGRESP came back: that close is the
client's judge. The broker's judge (disconnect after 1.5 x K with no packet)
is read from the broker's own log (`mqtt_stack`).
"""

from __future__ import annotations

import argparse
import itertools
import signal
import threading

import paho.mqtt.client as mqtt

from ._peer import emit, ports_arg


def run(args) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    for port in itertools.cycle(ports_arg(args.ports)):
        if stop.is_set():
            return
        gone = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.id, protocol=mqtt.MQTTv311)

        def on_connect(c, userdata, flags, reason, properties, port=port):
            emit("open", port=port, keepalive=args.keepalive)

        def on_disconnect(c, userdata, flags, reason, properties, port=port):
            emit("close", port=port, judged=reason == "Keep alive timeout" or reason.value == 141 or
                 str(reason).lower().startswith("keep alive"), why=str(reason))
            gone.set()

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        try:
            client.connect("127.0.0.1", port, keepalive=args.keepalive)
        except OSError as exc:
            emit("refused", port=port, why=type(exc).__name__)
        else:
            client.loop_start()
            while not (gone.is_set() or stop.is_set()):
                gone.wait(0.05)
            if stop.is_set():
                client.disconnect()
                client.loop_stop()
                return
            client.loop_stop()
        stop.wait(args.retry)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="peer_mqtt")
    parser.add_argument("--ports", required=True)
    parser.add_argument("--keepalive", type=int, required=True)
    parser.add_argument("--retry", type=float, default=0.1)
    parser.add_argument("--id", default="c0")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
