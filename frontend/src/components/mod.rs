//! Widgets shared by pages.

pub mod error_list;
pub mod graph_view;
pub mod side_panel;
pub mod timeline;
