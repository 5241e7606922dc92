"""Placeholder CLI; the real one is being written separately."""


def main(argv=None):
    return 0
