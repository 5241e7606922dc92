"""nginx (Debian) as a reverse proxy with an idle timeout in front of the real websockets server.

Each "server" of a run is a pair: a `peer_websockets` server pinging every I
with ping_timeout T (the scenario's configuration A) and an nginx in front of
it whose ``proxy_read_timeout`` and ``proxy_send_timeout`` are the
``idle_timeout`` of the scenario's ``[[proxy]]`` (the proxies/ presets).
nginx runs with ``daemon off``, its prefix, config, pid file and temp paths
in the run's temporary directory, error log on stderr; clients connect to
nginx with their own keepalive off. nginx's cut of an idle
upgraded connection is logged at error level ("upstream timed out ... while
proxying upgraded connection"): that line is the proxy's judge.
"""

from __future__ import annotations

import re
import shutil
import sys

from ..procs import free_port
from .harness import Config, parse_json_event
from .websockets_stack import PEER

__all__ = ["STACK"]

_CUT = re.compile(r"timed out .* while proxying upgraded connection")



def _conf(prefix, port: int, upstream: int, idle_ms: int) -> str:
    temp = "\n".join(f"    {k}_temp_path {prefix}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout {idle_ms}ms;
            proxy_send_timeout {idle_ms}ms;
        }}
    }}
}}
"""


class NginxStack:
    key = "nginx"
    stack = "nginx-1.22/websockets-17.4"
    library = "nginx 1.22 (Debian) reverse proxy + websockets 17.4 server and client"
    preset = None
    rollouts = ()
    scenarios = ("proxies/nginx-websockets", "proxies/nginx-websockets-ping-90")
    scale = 0.05

    def tolerance_for(self, config: Config) -> tuple[float, float]:
        return (1.0, 3.0)

    def missing(self) -> str | None:
        if self._binary() is None:
            return "nginx (apt-get install nginx)"
        try:
            import websockets  # noqa: F401
        except ImportError:
            return "Python websockets 17.4 (pip install websockets==17.4)"
        return None

    def _binary(self) -> str | None:
        return shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.os.path.exists("/usr/sbin/nginx") else None)

    def start_server(self, h, name: str, port: int, config: Config):
        if h.proxy_idle is None:
            raise ValueError(f"{self.stack}: the scenario has no [[proxy]] for nginx to stand for")
        upstream = free_port()
        h.ps.start(f"upstream-{name}", [sys.executable, "-m", PEER, "server", "--port", str(upstream),
                                         "--interval", f"{config.interval * self.scale:g}",
                                         "--timeout", f"{config.timeout * self.scale:g}"],
                   ready_line='"ev": "listening"', timeout=20)
        prefix = h.dir / name
        prefix.mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(_conf(prefix, port, upstream, round(h.proxy_idle * self.scale * 1000)))
        return h.ps.start(name, [self._binary(), "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
                          ready_port=port, timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = [sys.executable, "-m", PEER, "client", "--ports", ",".join(map(str, ports)),
                "--interval", "0", "--timeout", "1", "--retry", f"{h.params_retry * self.scale:g}"]
        return h.ps.start(name, argv)

    def parse(self, proc: str, text: str) -> dict | None:
        if proc.startswith("server"):
            if _CUT.search(text):
                return {"ev": "close", "judged": True, "why": "nginx: upstream timed out while proxying upgraded connection"}
            return None
        return parse_json_event(text)


STACK = NginxStack()
