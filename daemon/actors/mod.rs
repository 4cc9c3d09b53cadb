//! The supervision tree: a root supervisor with one [`EntitySupervisor`] each for
//! connections, mappings and webhook endpoints, each running one actor per stored entity.

pub mod root;
pub mod supervisor;

pub use root::{ActorTree, start_child, start_tree, stop_child, supervisor};
pub use root::{Factories, LiveCounts, SupervisedKind};
pub use supervisor::{ActorCounter, ChildFactory, EntitySupervisor, NoChildren, SupervisorMsg};
