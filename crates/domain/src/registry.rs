//! Registry vocabulary: the key zones of clause G2 and workstation states (M4.1).
//! Theme packages (M4.2) are data (`catalog/theme_packages.toml`), not code.

use std::fmt;
use std::str::FromStr;

/// G2: an OPC qualifies only inside one of Fengtai's key zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// 中关村丰台园
    ZhongguancunFengtaiPark,
    /// 河西地区
    HexiArea,
    /// 北京10号线“青创村”
    Line10YouthVillage,
    /// IBI北京国际企业孵化中心
    IbiIncubator,
    /// 其他重点产业园区
    OtherKeyZone,
}

impl Zone {
    pub const ALL: [Zone; 5] = [
        Zone::ZhongguancunFengtaiPark,
        Zone::HexiArea,
        Zone::Line10YouthVillage,
        Zone::IbiIncubator,
        Zone::OtherKeyZone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Zone::ZhongguancunFengtaiPark => "zhongguancun_fengtai_park",
            Zone::HexiArea => "hexi_area",
            Zone::Line10YouthVillage => "line10_youth_village",
            Zone::IbiIncubator => "ibi_incubator",
            Zone::OtherKeyZone => "other_key_zone",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("不在丰台区重点区域（G2）：{0} (not a G2 key zone)")]
pub struct UnknownZone(pub String);

impl FromStr for Zone {
    type Err = UnknownZone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::ALL
            .into_iter()
            .find(|z| z.as_str() == s)
            .ok_or_else(|| UnknownZone(s.to_string()))
    }
}

/// M4.1: a workstation is free, reserved by its community, or occupied by one OPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkstationStatus {
    Free,
    Reserved,
    Occupied,
}

impl WorkstationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkstationStatus::Free => "free",
            WorkstationStatus::Reserved => "reserved",
            WorkstationStatus::Occupied => "occupied",
        }
    }
}

impl FromStr for WorkstationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Self::Free),
            "reserved" => Ok(Self::Reserved),
            "occupied" => Ok(Self::Occupied),
            other => Err(format!("unknown workstation status {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_round_trip_and_unknown_is_refused() {
        for z in Zone::ALL {
            assert_eq!(z.as_str().parse::<Zone>(), Ok(z));
        }
        assert!("chaoyang".parse::<Zone>().is_err());
    }
}
