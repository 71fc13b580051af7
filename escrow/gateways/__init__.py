"""The custody bank behind one interface (``base``): ``local`` (a sandbox) or ``stripe``."""
