import sys

from compression.cli import main
from compression.device import steady_allocator

steady_allocator()  # no fresh pages per forward pass (see its docstring)

sys.exit(main())
