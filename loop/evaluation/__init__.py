"""Comparable numbers: deltas between versions, the scoreboard, curves and the stopping signal."""
