"""Sign-in: Streamlit's own st.login / st.user (OIDC, `[auth]` in .streamlit/secrets.toml), the
roles of compression.access, and what the sidebar says about who is signed in.

Without `[auth]` the app is in local mode: one trusted user ("local"), every action allowed.
With it, every page first asks to sign in; each signed-in person gets the role the roles file
gives them (compression.access). The app reads the signed-in person through ONE function,
`identity()`; tests replace it (AppTest cannot sign in) and everything else follows from it.
"""

from __future__ import annotations

import streamlit as st

from compression import access


def configured() -> bool:
    """Sign-in is on: an [auth] section in the app's secrets."""
    try:
        from streamlit.auth_util import get_secrets_auth_section
        return bool(get_secrets_auth_section())
    except Exception:  # no secrets file, another Streamlit
        return False


def identity() -> str | None:
    """Who is signed in: None in local mode (no sign-in configured), "" when sign-in is configured
    and nobody is signed in (or outside a script run, or an e-mail the provider did not verify),
    else the signed-in e-mail. THE one place the app reads st.user; tests set their own."""
    if not configured():
        return None
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    if get_script_run_ctx() is None:  # a worker thread: it acts for the session that started it (access.acting_as)
        return ""
    user = st.user
    if not user.get("is_logged_in") or user.get("email_verified") is False:
        return ""
    return str(user.get("email") or "").strip()


def session_user() -> access.User | None:
    """The acting user of this script run, from identity(); None outside any script run in local
    mode (code of the command line's running in the same process acts as the command line's user)."""
    email = identity()  # a module global, looked up at each call: a test's replacement counts
    if email is None:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        return access.LOCAL_USER if get_script_run_ctx() is not None else None
    return access.signed_in_user(email)


access.use_user_source(session_user)  # the app's user source (compression.access.current_user)


def providers() -> list[str | None]:
    """The providers of [auth]: its subsections with a client id; [None] for a single unnamed one."""
    from streamlit.auth_util import get_secrets_auth_section
    section = get_secrets_auth_section()
    named = [k for k, v in section.items() if hasattr(v, "get") and v.get("client_id")]
    return named or [None]


def require_sign_in() -> access.User:
    """The acting user; with sign-in configured and nobody signed in, the sign-in screen and stop."""
    user = session_user() or access.LOCAL_USER
    if user.signed_in or user.trusted:
        return user
    st.title("Compression Explorer")
    st.info("Sign in to see the runs of this team. A review link someone sent you opens without signing in.")
    for provider in providers():
        label = f"Sign in with {provider.replace('_', ' ').title()}" if provider else "Sign in"
        st.button(label, key=f"auth_login_{provider or 'default'}", type="primary", icon=":material/login:",
                  on_click=st.login, args=(provider,) if provider else ())
    st.stop()


def account_box(user: access.User) -> None:
    """The sidebar's line on who is acting: local mode, or the signed-in e-mail, role and sign-out."""
    if user.trusted:
        st.caption("**local mode** · one trusted user, every action allowed (sign-in is not configured)")
        return
    st.markdown(f"Signed in as **{user.name}** · {user.role}")
    st.button("Sign out", key="auth_logout", on_click=st.logout, icon=":material/logout:")
