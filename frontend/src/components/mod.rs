//! Widgets shared by pages.

pub mod degraded_banner;
pub mod diff_view;
pub mod error_list;
pub mod find_bar;
pub mod flame_graph;
pub mod graph_view;
pub mod namespace_picker;
pub mod side_panel;
pub mod span_details;
pub mod timeline;
