"""(probes of this area are being written)"""
