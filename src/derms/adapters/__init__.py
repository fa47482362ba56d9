"""Protocol adapters: one sub-package per standard, each implementing :class:`derms.adapters.base.Adapter`."""
