//! What a node runs: the data plane (proxy listeners), the control plane (admin listener), or
//! both. Several nodes on one PostgreSQL store split these roles as the operator needs.

/// What `tollgate run` serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    /// Proxy listeners and the admin listener.
    #[default]
    All,
    /// Proxy listeners only; health and metrics on the status listener.
    DataPlane,
    /// The admin listener only (API, health, metrics); no traffic.
    ControlPlane,
}

impl Role {
    /// Whether the node proxies traffic.
    pub(crate) fn data_plane(self) -> bool {
        matches!(self, Self::All | Self::DataPlane)
    }

    /// Whether the node serves the admin API.
    pub(crate) fn control_plane(self) -> bool {
        matches!(self, Self::All | Self::ControlPlane)
    }

    /// The name used on the command line and in health reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::DataPlane => "data-plane",
            Self::ControlPlane => "control-plane",
        }
    }
}
