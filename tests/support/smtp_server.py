"""The SMTP server the email tests deliver to: aiosmtpd storing into a Maildir, optionally
asking for one user's login and speaking TLS (STARTTLS, or TLS from the first byte).

aiosmtpd's own command line cannot take an authenticator, hence this launcher.
Usage: smtp_server.py HOST PORT MAILDIR [--login USER PASSWORD] [--starttls|--implicit-tls CERT KEY]
"""

import argparse
import asyncio
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("maildir")
    parser.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"))
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    tls.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()

    context = None
    cert_key = args.starttls or args.implicit_tls
    if cert_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert_key)

    authenticator = None
    if args.login:
        user, password = (part.encode() for part in args.login)

        # Exactly one user with exactly one password; anything else is refused (535).
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == user
                and auth_data.password == password
            )
            # handled=False: aiosmtpd answers the refusal itself (535).
            return AuthResult(success=ok, handled=False)

    handler = Mailbox(args.maildir)

    def factory():
        return SMTP(
            handler,
            tls_context=context if args.starttls else None,
            require_starttls=bool(args.starttls),
            authenticator=authenticator,
            auth_required=authenticator is not None,
            # Behind implicit TLS the whole conversation is encrypted already.
            auth_require_tls=not args.implicit_tls,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host=args.host,
            port=args.port,
            ssl=context if args.implicit_tls else None,
        )
    )
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
