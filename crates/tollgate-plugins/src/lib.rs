//! Built-in policies (placeholder until the plugins land).
