//! `UserServiceRpc`, implemented for real.
//!
//! Semantics follow the course's `UserService` closely enough that the
//! captured bytes come out: `Login` of an unknown user answers
//! `LoginResponse { result: Some(ResultCode::default()), success: false }`
//! (`0a00` on the wire) and `Register` answers `success: true` (`0a001001`).
//! The course's handlers printed and returned constants; this one keeps users
//! in memory so the demo shows a register-then-login flow. A real service
//! would use a database and never store clear-text passwords.

use std::collections::HashMap;
use std::sync::Mutex;

use mprpc::{CallContext, Status};

use crate::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, ResultCode, UserServiceRpc,
};

/// User table: name → (id, password).
type Users = HashMap<Vec<u8>, (u32, Vec<u8>)>;

/// Most users the demo keeps: memory is bounded whatever callers send.
pub const MAX_USERS: usize = 10_000;

/// Longest name or password accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 256;

/// `errcode` of a refused registration (the course's `ResultCode` carries
/// application errors inside the response; 0 is success).
pub const ERR_REFUSED: i32 = 1;

/// Registered users, in memory, at most [`MAX_USERS`].
#[derive(Debug, Default)]
pub struct UserService {
    /// The user table.
    users: Mutex<Users>,
}

impl UserService {
    /// Locks the table, tolerating poisoning (entries are always complete).
    fn users(&self) -> std::sync::MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A `RegisterResponse` that refuses, saying why.
fn refused(why: String) -> RegisterResponse {
    RegisterResponse {
        result: Some(ResultCode {
            errcode: ERR_REFUSED,
            errmsg: why.into_bytes(),
        }),
        success: false,
    }
}

// ANCHOR: user_service
impl UserServiceRpc for UserService {
    async fn login(
        &self,
        _ctx: CallContext,
        request: LoginRequest,
    ) -> Result<LoginResponse, Status> {
        let success = self
            .users()
            .get(&request.name)
            .is_some_and(|(_, pwd)| *pwd == request.pwd);
        log::debug!(
            "login {:?}: {success}",
            String::from_utf8_lossy(&request.name)
        );
        // `result` is always present and empty: errcode 0 means "the call
        // worked"; `success` says whether the login did.
        Ok(LoginResponse {
            result: Some(ResultCode::default()),
            success,
        })
    }

    async fn register(
        &self,
        _ctx: CallContext,
        request: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        if request.name.len() > MAX_FIELD_LEN || request.pwd.len() > MAX_FIELD_LEN {
            return Ok(refused(format!(
                "name and password may have at most {MAX_FIELD_LEN} bytes each"
            )));
        }
        let mut users = self.users();
        // Re-registering a known name replaces it and costs nothing more.
        if users.len() >= MAX_USERS && !users.contains_key(&request.name) {
            return Ok(refused(format!(
                "the demo keeps at most {MAX_USERS} users; this one was not registered"
            )));
        }
        users.insert(request.name, (request.id, request.pwd));
        Ok(RegisterResponse {
            result: Some(ResultCode::default()),
            success: true,
        })
    }
}
// ANCHOR_END: user_service
