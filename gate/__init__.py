"""The RFID security-gate agent: detects items leaving without checkout and counts visitors."""
