//! Rendering: tables, JSON, trees and the classic listns.py view. The only
//! place that writes for people; everything from processes is escaped here.

pub mod events;
pub mod sanitize;
