//! networking.istio.io: `Gateway`, `VirtualService`, `DestinationRule`.

pub mod destination_rule;
pub mod gateway;
pub mod virtual_service;

pub use destination_rule::DestinationRule;
pub use gateway::Gateway;
pub use virtual_service::VirtualService;
