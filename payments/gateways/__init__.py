"""The custody banks behind ``core.gateways``' interface: ``local`` (the sandbox bank) and ``stripe``."""
