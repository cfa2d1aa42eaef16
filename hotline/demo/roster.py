"""Who takes part in the demo: a plausible working group and the organisations reporting to it."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.domain.enums import OrgKind

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE = ["Văn", "Thị", "Minh", "Quốc", "Thu", "Hải", "Ngọc", "Đức", "Thanh", "Gia"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hùng", "Khánh", "Lan", "Long", "Mai",
         "Nam", "Oanh", "Phúc", "Quang", "Sơn", "Tâm", "Thảo", "Trung", "Vy", "Yến", "Tuấn"]


@dataclass(frozen=True)
class Org:
    name: str
    kind: OrgKind
    language: str = "vi"


ORGANISATIONS: tuple[Org, ...] = (
    Org("Công ty CP Công nghệ Sao Bắc", OrgKind.ENTERPRISE),
    Org("Công ty TNHH Giải pháp Số Mekong", OrgKind.ENTERPRISE),
    Org("Tập đoàn Viễn thông Đông Dương", OrgKind.ENTERPRISE),
    Org("Công ty CP Dữ liệu Lạc Hồng", OrgKind.ENTERPRISE),
    Org("Công ty CP Fintech Ánh Dương", OrgKind.ENTERPRISE),
    Org("Công ty TNHH Robot Hòa Lạc", OrgKind.ENTERPRISE),
    Org("Công ty CP An ninh mạng Trường Sơn", OrgKind.ENTERPRISE),
    Org("Công ty CP Thương mại điện tử Chợ Việt", OrgKind.ENTERPRISE),
    Org("Công ty TNHH Nông nghiệp Số Tây Nguyên", OrgKind.ENTERPRISE),
    Org("Saigon Cloud Services JSC", OrgKind.ENTERPRISE, "en"),
    Org("Hanoi AI Lab Co., Ltd", OrgKind.ENTERPRISE, "en"),
    Org("Mekong Logistics Platform", OrgKind.ENTERPRISE, "en"),
    Org("Công ty CP Y tế Số Phương Nam", OrgKind.ENTERPRISE),
    Org("Công ty CP Bản đồ số Việt", OrgKind.ENTERPRISE),
    Org("Bộ Y tế", OrgKind.MINISTRY),
    Org("Bộ Giáo dục và Đào tạo", OrgKind.MINISTRY),
    Org("Bộ Công Thương", OrgKind.MINISTRY),
    Org("Bộ Nông nghiệp và Môi trường", OrgKind.MINISTRY),
    Org("Bộ Xây dựng", OrgKind.MINISTRY),
    Org("Ngân hàng Nhà nước Việt Nam", OrgKind.MINISTRY),
    Org("Thông tấn xã Việt Nam", OrgKind.MINISTRY),
    Org("Bảo hiểm xã hội Việt Nam", OrgKind.MINISTRY),
    Org("UBND tỉnh Bắc Ninh", OrgKind.LOCALITY),
    Org("UBND thành phố Đà Nẵng", OrgKind.LOCALITY),
    Org("Sở Khoa học và Công nghệ TP. Hồ Chí Minh", OrgKind.LOCALITY),
    Org("UBND tỉnh Lào Cai", OrgKind.LOCALITY),
    Org("Sở Tài chính tỉnh Cần Thơ", OrgKind.LOCALITY),
    Org("UBND tỉnh Quảng Ninh", OrgKind.LOCALITY),
    Org("Sở Nội vụ tỉnh Nghệ An", OrgKind.LOCALITY),
    Org("Thua Thien Hue Provincial People's Committee", OrgKind.LOCALITY, "en"),
)


def person_name(index: int) -> str:
    """Deterministic, varied Vietnamese names (index -> name)."""
    return (f"{FAMILY[index % len(FAMILY)]} {MIDDLE[(index // 3) % len(MIDDLE)]} "
            f"{GIVEN[(index * 7) % len(GIVEN)]}")


def tax_code(index: int) -> str:
    return f"01{(index * 7919 + 13) % 10**8:08d}"
