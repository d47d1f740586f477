"""Runs in other tools' formats (Inspect eval logs). Reads only the stored tables
(oversight/store/), so it sits beside score/ on top of store/."""
