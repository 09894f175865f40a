//! The course's example services, implemented for real: used by the
//! examples, the tests and the benchmarks, so they live in the library once.
//!
//! Semantics follow the course's `UserService` closely enough that the
//! captured bytes come out: `Login` of an unknown user answers
//! `LoginResponse { result: Some(ResultCode::default()), success: false }`
//! (`0a00` on the wire) and `Register` answers `success: true` (`0a001001`).
//! The course's handlers printed and returned constants; ours keep users in
//! memory so the demo shows a register-then-login flow. A real service would
//! use a database and never store clear-text passwords.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::proto::fixbug::{
    FriendServiceRpc, GetFriendsListRequest, GetFriendsListResponse, LoginRequest, LoginResponse,
    RegisterRequest, RegisterResponse, ResultCode, UserServiceRpc,
};
use crate::{CallContext, Status};

/// User table: name → (id, password).
type Users = HashMap<Vec<u8>, (u32, Vec<u8>)>;

/// Registered users, in memory.
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
        self.users().insert(request.name, (request.id, request.pwd));
        Ok(RegisterResponse {
            result: Some(ResultCode::default()),
            success: true,
        })
    }
}
// ANCHOR_END: user_service

/// A fixed friend list, like the course's example.
#[derive(Debug, Default)]
pub struct FriendService;

impl FriendServiceRpc for FriendService {
    async fn get_friends_list(
        &self,
        _ctx: CallContext,
        request: GetFriendsListRequest,
    ) -> Result<GetFriendsListResponse, Status> {
        if request.userid == 0 {
            // An application-level error travels inside the response.
            return Ok(GetFriendsListResponse {
                result: Some(ResultCode {
                    errcode: 1,
                    errmsg: b"userid 0 does not exist".to_vec(),
                }),
                friends: Vec::new(),
            });
        }
        Ok(GetFriendsListResponse {
            result: Some(ResultCode::default()),
            friends: ["gao yang", "liu hong", "wang shuo"]
                .iter()
                .map(|f| f.as_bytes().to_vec())
                .collect(),
        })
    }
}
