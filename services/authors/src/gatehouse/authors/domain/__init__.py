"""The authors domain: plain Python, no framework imports (only ``gatehouse.common.errors``)."""
