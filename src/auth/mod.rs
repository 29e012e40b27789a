//! Authentication: password hashing off the executor, JWT issue/verify, the guard extractor,
//! and the login throttle.

pub mod extractor;
pub mod jwt;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use extractor::{AuthAdmin, Client};
pub use jwt::{Claims, TokenKeys};
pub use password::PasswordHasher;
