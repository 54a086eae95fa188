"""Supervision: the OTP-style supervisor on trio, the actor contract, channels and the tree dump.

Nothing here knows about IB, trading or HTTP; every other part of the runtime builds on it.
"""
