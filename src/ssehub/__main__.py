"""``python -m ssehub`` is the ``ssehub`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
