//! The roles of the platform (see the README's role table). A user has exactly one role;
//! what a role may do is decided by the web layer's route table, not here.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// OPC 创业者
    OpcFounder,
    /// 区内企业
    Enterprise,
    /// 社区运营方 (M1, M2.2)
    CommunityOperator,
    /// 平台运营方
    PlatformOperator,
    /// 公共服务专员 (M4.3)
    Specialist,
    /// 管委会 (F1, S1)
    Committee,
    /// 委办局 (F1)
    Agency,
    /// 财政局 (F1)
    Finance,
    /// 审计 (read-only)
    Auditor,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::OpcFounder,
        Role::Enterprise,
        Role::CommunityOperator,
        Role::PlatformOperator,
        Role::Specialist,
        Role::Committee,
        Role::Agency,
        Role::Finance,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::OpcFounder => "opc_founder",
            Role::Enterprise => "enterprise",
            Role::CommunityOperator => "community_operator",
            Role::PlatformOperator => "platform_operator",
            Role::Specialist => "specialist",
            Role::Committee => "committee",
            Role::Agency => "agency",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("未知角色：{0} (unknown role)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_code() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
