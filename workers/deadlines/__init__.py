"""Deadline arithmetic for SLA timers: production calendar, policies per regime, due moments.

Pure code with no I/O besides reading its data files, so the SLA worker, the recompute
command and ``appeals sla due`` all get the same answer. Entry points: ``calendar``
(BusinessCalendar), ``policies`` (PolicyBook), ``compute`` (answer_due and friends),
``cli`` (register for the ``appeals`` command).
"""
