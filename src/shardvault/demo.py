"""``make demo``: the main job on embedded defaults.

It grows with the project; today it runs what exists end to end and prints each step.
"""

from shardvault import __version__


def main() -> None:
    """Run the demo."""
    print(f"shardvault {__version__}")  # noqa: T201


if __name__ == "__main__":
    main()
