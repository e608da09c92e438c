"""The lab kit: exercises the lab checks and scenarios that break the lab for students to fix.

- `model.py`     pure: what an exercise and a scenario are, a check's `Result`, progress records,
                 graded hints, answers, the instructor's report.
- `exercises.py` the lab guide's exercises as data, each with a check over a `Probe`.
- `scenarios.py` break-and-fix scenarios as data: start / check / reset / solution.
- `probe.py`     the I/O edge: the API, commands run inside pods and node namespaces, the
                 proxy's rules; every check looks at the lab only through it.
- `progress.py`  the progress file in the lab's state dir (hints revealed, first pass).
- `control.py`   `kubelab restart COMPONENT --node NODE` (how a student un-freezes a component).

Checks look at what the student achieved, by real traffic (curl and dig run inside a pod's
namespaces, curl to a NodePort from the host) and real state (Nodes, proxy rules), never at how
the student typed it.
"""
