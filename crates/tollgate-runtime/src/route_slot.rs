//! Per-route state of the data plane that outlives a revision.

use std::any::Any;
use std::sync::OnceLock;

/// State the data plane keeps for a compiled route (its metric handles), created empty by the
/// compiler and carried into the next revision while the route is unchanged (same API version
/// definition, same environment). The data plane's own per-route caches live here instead of
/// in per-worker tables indexed by route position, which a worker would have to rebuild, one
/// entry per route, whenever a new snapshot arrives.
#[derive(Default)]
pub struct RouteSlot(OnceLock<Box<dyn Any + Send + Sync>>);

impl RouteSlot {
    /// The value of type `T` in the slot, set by `init` if the slot is empty; `None` if the
    /// slot holds a value of another type (one user per slot).
    pub fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(init())).downcast_ref()
    }
}

impl std::fmt::Debug for RouteSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSlot")
            .field("set", &self.0.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_init_wins_and_another_type_is_refused() {
        let slot = RouteSlot::default();
        assert_eq!(slot.get_or_init(|| 1u32), Some(&1));
        assert_eq!(slot.get_or_init(|| 2u32), Some(&1));
        assert_eq!(slot.get_or_init(|| "other"), None);
    }
}
