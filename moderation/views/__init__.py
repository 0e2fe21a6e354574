"""The HTML pages, one module per concern; the detector's pages live in detection.views."""
