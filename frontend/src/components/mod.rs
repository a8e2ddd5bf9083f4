//! Widgets shared by pages.

pub mod diff_view;
pub mod error_list;
pub mod graph_view;
pub mod side_panel;
pub mod timeline;
