//! The supervision tree: a root supervisor with one [`EntitySupervisor`] each for
//! connections, mappings and webhook endpoints, each running one actor per stored entity.

pub mod directory;
pub mod root;
pub mod supervisor;

pub use directory::Directory;
pub use root::{ActorTree, start_tree};
pub use root::{Factories, LiveCounts, SupervisedKind};
pub use supervisor::{ActorCounter, ChildFactory, EntitySupervisor, NoChildren, SupervisorMsg};
