"""The embedded SFTP service and the partner's side of an exchange.

- :mod:`gateway.sftp.service`: listening socket, host key, algorithms, one thread
  per connection under a catch-all (:class:`~gateway.sftp.service.SftpService`);
- :mod:`gateway.sftp.server`: logins by public key, bans and session budgets;
- :mod:`gateway.sftp.session`: the SFTP v3 requests of one session, uploads to
  hidden names, delivery events;
- :mod:`gateway.sftp.jail`: the guards every path passes (clean, resolve, check);
- :mod:`gateway.sftp.accounts`: accounts, keys and the folders each one sees;
- :mod:`gateway.sftp.protocol`: the wire format;
- :mod:`gateway.sftp.publish`: renaming a finished upload without replacing a file;
- :mod:`gateway.sftp.slots`: hidden upload files named on disk ahead of use, sealed
  small uploads, and their recovery after a crash;
- :mod:`gateway.sftp.readahead`: fewer system calls under paramiko's transport;
- :mod:`gateway.sftp.events`: audit events and ledger entries of the service;
- :mod:`gateway.sftp.client`, :mod:`gateway.sftp.partner`,
  :mod:`gateway.sftp.exchange`: ``loonbrug send`` and ``loonbrug fetch``.

See docs/sftp.md for what partners see and how to connect.
"""
