//! The configuration check behind every admin write: exactly what loading a file does
//! (model validation, then compiling with the plugin registry, which types every policy's
//! configuration), without publishing anything.

use tollgate_model::{Config, Diagnostic};
use tollgate_plugin_api::Registry;
use tollgate_runtime::{CompileOptions, compile};

/// Validates configurations by compiling them.
pub(crate) struct CompileValidator {
    pub(crate) plugins: Registry,
}

impl tollgate_admin::control::ConfigValidator for CompileValidator {
    fn validate(&self, config: &Config) -> Result<(), Vec<Diagnostic>> {
        tollgate_model::validate(config)?;
        compile(
            config,
            &CompileOptions {
                registry: &self.plugins,
                previous: None,
                workers: 1,
                revision: 0,
            },
        )
        .map(drop)
    }
}
