//! A snapshot's compiled routes, in shared blocks.
//!
//! Routes are kept in blocks, one per API version live in an environment, each behind an
//! `Arc`: a compile that did not touch an API version (in that environment) hands the next
//! snapshot the same block instead of building its routes again. At 10,000 routes, a change
//! to a global policy then builds a hundred block pointers, not ten thousand routes, and
//! freeing the replaced snapshot drops as many. A route is named by its block and its place in
//! the block ([`RouteId`]); routers store such names.

use std::sync::Arc;

use crate::CompiledRoute;

/// Where a route is in [`Routes`]: its block and its place in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId {
    /// Block.
    pub block: u32,
    /// Place in the block.
    pub index: u32,
}

impl RouteId {
    /// Route `index` of block `block`.
    pub fn new(block: usize, index: usize) -> Self {
        // Blocks are per API version and environment, routes per API version: far below
        // u32::MAX in any configuration a node could hold; saturate rather than wrap.
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            block: narrow(block),
            index: narrow(index),
        }
    }
}

/// One API version's routes in one environment, shared between the snapshots that did not
/// change them.
pub type RouteBlock = Arc<[CompiledRoute]>;

/// The compiled routes of a snapshot.
#[derive(Debug, Default, Clone)]
pub struct Routes {
    blocks: Vec<RouteBlock>,
}

impl Routes {
    /// Routes from their blocks, in the order [`RouteId::block`] counts.
    pub fn from_blocks(blocks: Vec<RouteBlock>) -> Self {
        Self { blocks }
    }

    /// The route `id` names, if it exists.
    #[inline]
    pub fn get(&self, id: RouteId) -> Option<&CompiledRoute> {
        self.blocks.get(id.block as usize)?.get(id.index as usize)
    }

    /// The blocks.
    pub fn blocks(&self) -> &[RouteBlock] {
        &self.blocks
    }

    /// Takes the blocks out (to free them one at a time).
    pub fn take_blocks(&mut self) -> Vec<RouteBlock> {
        std::mem::take(&mut self.blocks)
    }

    /// Every route, block by block.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledRoute> {
        self.blocks.iter().flat_map(|b| b.iter())
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(|b| b.is_empty())
    }
}

impl std::ops::Index<RouteId> for Routes {
    type Output = CompiledRoute;

    /// The route `id` names. Panics if there is none: use it with ids from this snapshot's
    /// routers only.
    fn index(&self, id: RouteId) -> &CompiledRoute {
        &self.blocks[id.block as usize][id.index as usize]
    }
}
