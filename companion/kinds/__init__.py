"""Band kinds: the bands people own behind one interface (see :mod:`companion.kinds.base`)."""
