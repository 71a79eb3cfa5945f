"""Who may get in: keys, their options, certificates, revocation, the files that
decide it (and their modes), the host key, and penalties for those who keep failing."""
