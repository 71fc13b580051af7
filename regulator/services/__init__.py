"""Writes for the regulator.

``audit``       the audit log every other service here (and complaints', registered) writes through;
                regulators' sign-ins, failures and sign-outs (Django's auth signals, regulator.apps)
``contacts``    a consumer's full name and phone for an inspection case, each showing logged
``risk``        computing every merchant's score (``compute_risk``)
``actions``     flags, freezes and refund orders against a merchant
``jurisdiction`` regulators and the districts and categories they oversee (``createregulator``)
"""
