"""Conformance: real servers and clients as the judge of the model's traces.

``procs`` starts and stops processes, ``switchboard`` is the load balancer and
fault switch between them, and the ``faye*`` modules drive a real Faye fleet
on Redis (the Node package in ``conformance/faye/``).
"""

from stormcheck import one_name

one_name(__name__, "stormcheck.conformance")
