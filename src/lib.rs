//! Quiver facade.
