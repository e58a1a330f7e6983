//! Listening sockets: one per worker and address, with `SO_REUSEPORT`, so the kernel spreads
//! connections across workers without a shared accept lock.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Fails when another process already listens on `addr`, even one that set `SO_REUSEPORT`
/// (which would otherwise let two gateways share the port silently): a socket bound without
/// `SO_REUSEPORT` cannot share it.
pub(crate) fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    probe.bind(&addr.into())?;
    probe.listen(1)?;
    Ok(())
}

/// Binds a non-blocking listening socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
