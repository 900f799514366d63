"""Which device-tree cells the kernel gives a provider.

Since v6.7 (commit 2cc3b37f5b6d, "nvmem: add explicit config option to read
old syntax fixed OF cells") the kernel turns the direct ``reg`` children of a
provider's DT node into cells only when the driver sets
``nvmem_config.add_legacy_fixed_of_cells``.  An ``nvmem-layout`` child with
``compatible = "fixed-layout"`` is used for every provider.  The tables below
are the opt-in list, read from ``grep -rn add_legacy_fixed_of_cells`` over
Debian's linux-source-6.12 (6.12.117).
"""

from __future__ import annotations

from .kernel_version import SERIES
from .model import BYTE_ACCESS, Access, CellRules, Provider, is_auto_id_name
from .providers import MTD_NAND_TYPES
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final, Literal

    from .kernel_version import Series
    from .model import Fixup

    LegacyCellsMode = Literal["auto", "opt-in", "all"]


@value
class LegacyOfCellDriver:
    """A driver that sets ``add_legacy_fixed_of_cells = true``."""

    source: str  # kernel file that sets the flag
    compatibles: tuple[str, ...]
    access: Access = BYTE_ACCESS
    fixup: Fixup | None = None  # nvmem_config.fixup_dt_cell_info
    #: rule sets (kernel_version.SERIES) whose kernels have this driver setting the flag
    series: tuple[Series, ...] = SERIES


_W4 = Access(word_size=4)
_S4W4 = Access(stride=4, word_size=4)

#: Unconditional setters, drivers/nvmem/*.c and drivers/rtc/nvmem.c (6.12.117).
LEGACY_OF_CELL_DRIVERS: Final[tuple[LegacyOfCellDriver, ...]] = (
    LegacyOfCellDriver("drivers/nvmem/apple-efuses.c", ("apple,efuses",), _S4W4),
    LegacyOfCellDriver(
        "drivers/nvmem/imx-ocotp-ele.c",
        ("fsl,imx93-ocotp", "fsl,imx95-ocotp"),
        fixup="imx-ocotp",
    ),
    LegacyOfCellDriver(
        "drivers/nvmem/imx-ocotp-scu.c", ("fsl,imx8qxp-scu-ocotp", "fsl,imx8qm-scu-ocotp"), _W4
    ),
    LegacyOfCellDriver(
        "drivers/nvmem/imx-ocotp.c",
        (
            "fsl,imx6q-ocotp", "fsl,imx6sl-ocotp", "fsl,imx6sx-ocotp", "fsl,imx6ul-ocotp",
            "fsl,imx6ull-ocotp", "fsl,imx7d-ocotp", "fsl,imx6sll-ocotp", "fsl,imx7ulp-ocotp",
            "fsl,imx8mq-ocotp", "fsl,imx8mm-ocotp", "fsl,imx8mn-ocotp", "fsl,imx8mp-ocotp",
        ),
        _W4,
        fixup="imx-ocotp",
    ),
    LegacyOfCellDriver("drivers/nvmem/meson-efuse.c", ("amlogic,meson-gxbb-efuse",)),
    LegacyOfCellDriver("drivers/nvmem/meson-mx-efuse.c", ("amlogic,meson6-efuse",)),
    LegacyOfCellDriver(
        "drivers/nvmem/meson-mx-efuse.c", ("amlogic,meson8-efuse", "amlogic,meson8b-efuse"), _S4W4
    ),
    LegacyOfCellDriver("drivers/nvmem/microchip-otpc.c", ("microchip,sama7g5-otpc",), _S4W4),
    LegacyOfCellDriver("drivers/nvmem/mtk-efuse.c", ("mediatek,mt8173-efuse", "mediatek,efuse")),
    # mt8186_mtk_efuse_pdata.uses_post_processing = true
    LegacyOfCellDriver(
        "drivers/nvmem/mtk-efuse.c", ("mediatek,mt8186-efuse",), fixup="mtk-efuse-gpu-speedbin"
    ),
    LegacyOfCellDriver("drivers/nvmem/qcom-spmi-sdam.c", ("qcom,spmi-sdam",)),
    # stride/word_size 4 since 6.12.31 ("nvmem: qfprom: switch to 4-byte aligned reads")
    LegacyOfCellDriver(
        "drivers/nvmem/qfprom.c",
        ("qcom,qfprom", "qcom,sc7180-qfprom", "qcom,sc7280-qfprom"),
        _S4W4,
        fixup="qfprom",
    ),
    LegacyOfCellDriver("drivers/nvmem/rave-sp-eeprom.c", ("zii,rave-sp-eeprom",)),
    LegacyOfCellDriver(
        "drivers/nvmem/rockchip-efuse.c",
        (
            "rockchip,rockchip-efuse", "rockchip,rk3066a-efuse", "rockchip,rk3188-efuse",
            "rockchip,rk3228-efuse", "rockchip,rk3288-efuse", "rockchip,rk3368-efuse",
            "rockchip,rk3328-efuse", "rockchip,rk3399-efuse",
        ),
    ),
    LegacyOfCellDriver(
        "drivers/nvmem/rockchip-otp.c",
        ("rockchip,px30-otp", "rockchip,rk3308-otp", "rockchip,rk3576-otp", "rockchip,rk3588-otp"),
    ),
    LegacyOfCellDriver("drivers/nvmem/sc27xx-efuse.c", ("sprd,sc2731-efuse", "sprd,sc2730-efuse")),
    LegacyOfCellDriver("drivers/nvmem/sec-qfprom.c", ("qcom,sec-qfprom",)),
    LegacyOfCellDriver("drivers/nvmem/sprd-efuse.c", ("sprd,ums312-efuse",)),
    LegacyOfCellDriver(
        "drivers/nvmem/stm32-romem.c",
        ("st,stm32f4-otp", "st,stm32mp15-bsec", "st,stm32mp13-bsec", "st,stm32mp25-bsec"),
    ),
    LegacyOfCellDriver("drivers/nvmem/sunplus-ocotp.c", ("sunplus,sp7021-ocotp",)),
    LegacyOfCellDriver(
        "drivers/nvmem/sunxi_sid.c",
        (
            "allwinner,sun4i-a10-sid", "allwinner,sun7i-a20-sid", "allwinner,sun8i-a83t-sid",
            "allwinner,sun8i-h3-sid", "allwinner,sun20i-d1-sid", "allwinner,sun50i-a64-sid",
            "allwinner,sun50i-h5-sid", "allwinner,sun50i-h6-sid",
        ),
        Access(stride=4),
    ),
    LegacyOfCellDriver("drivers/nvmem/uniphier-efuse.c", ("socionext,uniphier-efuse",)),
    LegacyOfCellDriver("drivers/nvmem/zynqmp_nvmem.c", ("xlnx,zynqmp-nvmem-fw",)),
    # New in 7.2 (not in 6.12.117): drivers/nvmem/s32g-ocotp-nvmem.c, word_size 4
    LegacyOfCellDriver("drivers/nvmem/s32g-ocotp-nvmem.c", ("nxp,s32g2-ocotp",), _W4,
                       series=("7.2",)),
)

#: RTC drivers registering through drivers/rtc/nvmem.c: devm_rtc_nvmem_register(),
#: which sets the flag for every RTC (6.12.117, drivers/rtc/*.c of_match tables).
#: nvmem_config->dev is the RTC's bus device, so the cells are children of its node.
RTC_NVMEM_DRIVERS: Final[tuple[LegacyOfCellDriver, ...]] = (
    LegacyOfCellDriver(
        "drivers/rtc/rtc-abx80x.c",
        (
            "abracon,abx80x", "abracon,ab0801", "abracon,ab0803", "abracon,ab0804",
            "abracon,ab0805", "abracon,ab1801", "abracon,ab1803", "abracon,ab1804",
            "abracon,ab1805", "microcrystal,rv1805",
        ),
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-cmos.c", ("motorola,mc146818",)),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-ds1307.c",
        (
            "dallas,ds1307", "dallas,ds1308", "dallas,ds1337", "dallas,ds1338", "dallas,ds1339",
            "dallas,ds1388", "dallas,ds1340", "dallas,ds1341", "maxim,ds3231", "st,m41t0",
            "st,m41t00", "st,m41t11", "microchip,mcp7940x", "microchip,mcp7941x",
            "pericom,pt7c4338", "epson,rx8025", "isil,isl12057", "epson,rx8130",
        ),
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-ds1742.c", ("maxim,ds1742",)),
    LegacyOfCellDriver("drivers/rtc/rtc-ds3232.c", ("dallas,ds3232",)),
    LegacyOfCellDriver("drivers/rtc/rtc-isl12026.c", ("isil,isl12026",)),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-isl1208.c",
        ("isil,isl1208", "isil,isl1209", "isil,isl1218", "isil,isl1219"),
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-m48t86.c", ("st,m48t86",)),
    LegacyOfCellDriver("drivers/rtc/rtc-max31335.c", ("adi,max31335",), Access(word_size=8)),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-meson.c",
        ("amlogic,meson6-rtc", "amlogic,meson8-rtc", "amlogic,meson8b-rtc", "amlogic,meson8m2-rtc"),
        _S4W4,
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-omap.c", ("ti,am3352-rtc", "ti,da830-rtc"), _S4W4),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-pcf2127.c", ("nxp,pcf2127", "nxp,pcf2129", "nxp,pca2129", "nxp,pcf2131")
    ),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-pcf85063.c",
        ("nxp,pca85073a", "nxp,pcf85063", "nxp,pcf85063tp", "nxp,pcf85063a", "microcrystal,rv8263"),
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-pcf85363.c", ("nxp,pcf85263", "nxp,pcf85363")),
    LegacyOfCellDriver("drivers/rtc/rtc-rv3028.c", ("microcrystal,rv3028",)),
    LegacyOfCellDriver("drivers/rtc/rtc-rv3029c2.c", ("microcrystal,rv3029",)),
    LegacyOfCellDriver("drivers/rtc/rtc-rv3032.c", ("microcrystal,rv3032",)),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-rv8803.c",
        ("microcrystal,rv8803", "epson,rx8803", "epson,rx8804", "epson,rx8900"),
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-rx8581.c", ("epson,rx8571", "epson,rx8581")),
    # 7.2 only: s35390a_probe() calls devm_rtc_nvmem_register() (s35390a_nvram, 1 byte)
    LegacyOfCellDriver("drivers/rtc/rtc-s35390a.c", ("sii,s35390a",), series=("7.2",)),
    LegacyOfCellDriver(
        "drivers/rtc/rtc-sun6i.c",
        (
            "allwinner,sun6i-a31-rtc", "allwinner,sun8i-a23-rtc", "allwinner,sun8i-h3-rtc",
            "allwinner,sun8i-r40-rtc", "allwinner,sun8i-v3-rtc", "allwinner,sun50i-h5-rtc",
            "allwinner,sun50i-h6-rtc", "allwinner,sun50i-h616-rtc", "allwinner,sun50i-r329-rtc",
        ),
        _S4W4,
    ),
    LegacyOfCellDriver("drivers/rtc/rtc-ti-k3.c", ("ti,am62-rtc",), _S4W4),
    LegacyOfCellDriver("drivers/rtc/rtc-twl.c", ("ti,twl4030-rtc",)),
)

#: RTC nvmem devices of drivers without an OF match table (rtc-ds1305.c, ...):
#: recognised by the name devm_rtc_nvmem_register() gives them, the
#: ``nvmem_config.name`` followed by the NVMEM_DEVID_AUTO number.
RTC_NVMEM_NAME_PREFIXES: Final = (
    "ds1305_nvram", "ds1343-", "ds1511_nvram", "ds1553_nvram", "ds1685_nvram", "m48t59-",
    "rp5c01_nvram", "stk17ta8_nvram",
)

#: drivers/w1/slaves/w1_ds250x.c: the families it binds (W1_DS2501_UNW_PROM 0x09,
#: W1_DS2502_UNW_PROM 0x89, W1_DS2505 0x0b, W1_DS2505_UNW_PROM 0x91), as its nvmem
#: device name spells them: "%s-%02x-%012llx" (bus master) or "%02x-%012llx", type OTP.
W1_DS250X_FAMILIES: Final = frozenset({"09", "89", "0b", "91"})
_W1_ID_LEN: Final = len("09-0123456789ab")
_LOWER_HEX: Final = frozenset("0123456789abcdef")


def is_rtc_nvmem_name(name: str) -> bool:
    """A name devm_rtc_nvmem_register() gives an RTC driver without an OF match table."""
    return is_auto_id_name(name, RTC_NVMEM_NAME_PREFIXES)


def is_w1_ds250x_name(name: str) -> bool:
    """``[<master>-]<family>-<12 lower-case hex digits>`` with a DS250x family."""
    if len(name) < _W1_ID_LEN:
        return False
    head, family, serial = name[:-_W1_ID_LEN], name[-_W1_ID_LEN:-13], name[-13:]
    if family not in W1_DS250X_FAMILIES or serial[0] != "-" or not _LOWER_HEX.issuperset(
            serial[1:]):
        return False
    # the master's name: at least one character, then the dash ("%s-")
    return not head or (len(head) > 1 and head.endswith("-") and "\n" not in head)

#: Drivers that do NOT opt in but still constrain sysfs reads (aligned windows).
ACCESS_ONLY_DRIVERS: Final[tuple[tuple[tuple[str, ...], Access], ...]] = (
    (("fsl,vf610-ocotp",), _W4),
    (("fsl,imx23-ocotp", "fsl,imx28-ocotp"), _W4),
    (("fsl,ls1021a-sfp", "fsl,ls1028a-sfp"), _W4),
    (("microchip,lan9662-otpc",), BYTE_ACCESS),
    (("nvidia,tegra20-efuse", "nvidia,tegra30-efuse", "nvidia,tegra114-efuse",
      "nvidia,tegra124-efuse", "nvidia,tegra186-efuse", "nvidia,tegra194-efuse",
      "nvidia,tegra234-efuse"), _S4W4),
)

def _lower_rows(rows: Iterable[tuple[str, ...]]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(c.lower() for c in row) for row in rows)


#: Each row's compatibles lower-cased once, per matching table (by identity): every
#: provider of a scan is matched against them.
_LOWERED: Final = {id(t): _lower_rows(r.compatibles for r in t)
                   for t in (LEGACY_OF_CELL_DRIVERS, RTC_NVMEM_DRIVERS)}
_ACCESS_LOWERED: Final = _lower_rows(compats for compats, _ in ACCESS_ONLY_DRIVERS)

LEGACY_CELLS_MODES = ("auto", "opt-in", "all")


def _match(compatibles: tuple[str, ...], table: tuple[LegacyOfCellDriver, ...],
           series: Series | None = None) -> LegacyOfCellDriver | None:
    """``of_match_device()``: the first table row any compatible matches, case-insensitively,
    among the rows of the kernels of *series* (None: any)."""
    wanted = {c.lower() for c in compatibles}
    lowered = _LOWERED.get(id(table)) or _lower_rows(r.compatibles for r in table)
    for row, names in zip(table, lowered, strict=True):
        if series is not None and series not in row.series:
            continue
        if not names.isdisjoint(wanted):
            return row
    return None


def _access_only(compatibles: tuple[str, ...]) -> Access:
    wanted = {c.lower() for c in compatibles}
    for (_, access), names in zip(ACCESS_ONLY_DRIVERS, _ACCESS_LOWERED, strict=True):
        if not names.isdisjoint(wanted):
            return access
    return BYTE_ACCESS


def cell_rules(
    provider: Provider,
    legacy_mode: Literal["opt-in", "all"] = "opt-in",
    extra_compatibles: tuple[str, ...] = (),
    series: Series = "6.12",
) -> CellRules:
    """Decide as ``nvmem_register()`` of the *series* kernels does whether legacy
    children become cells."""
    compat = provider.compatible
    row = (_match(compat, LEGACY_OF_CELL_DRIVERS, series)
           or _match(compat, RTC_NVMEM_DRIVERS, series))
    access = row.access if row else _access_only(compat)
    fixup = row.fixup if row else None

    if provider.is_mtd_otp:
        # drivers/mtd/mtdcore.c: mtd_otp_nvmem_register(): !mtd_type_is_nand(mtd)
        nand = provider.mtd_type in MTD_NAND_TYPES
        decision = (not nand, f"MTD OTP on {provider.mtd_type} flash"
                    + (" (NAND: no legacy cells)" if nand else ""))
    elif provider.is_mtd:
        # drivers/mtd/mtdcore.c: mtd_nvmem_add(): of_device_is_compatible(node, "nvmem-cells")
        has = any(c.lower() == "nvmem-cells" for c in compat)
        decision = (has, "MTD partition compatible with nvmem-cells" if has
                    else "MTD partition without the nvmem-cells compatible")
    elif row is not None:
        decision = (True, f"driver opts in ({row.source})")
    elif is_rtc_nvmem_name(provider.name):
        decision = (True, "RTC NVRAM (drivers/rtc/nvmem.c)")
    elif provider.parent_subsystem == "w1" and is_w1_ds250x_name(provider.name):
        decision = (True, "w1 DS250x EPROM (drivers/w1/slaves/w1_ds250x.c)")
    elif extra_compatibles and any(
        c.lower() in {e.lower() for e in extra_compatibles} for c in compat
    ):
        decision = (True, "compatible listed in configuration (extra_legacy_compatibles)")
    else:
        decision = (False, "driver does not set add_legacy_fixed_of_cells")

    legacy, reason = decision
    of_node_used = True
    if legacy_mode == "all" and not legacy:
        if provider.is_mtd and not provider.is_mtd_otp:
            # Before v6.7 mtd_nvmem_add() set config.no_of_node for such partitions.
            of_node_used = False
            reason = "pre-6.7 kernel: MTD partition without nvmem-cells has no of_node"
        else:
            legacy, reason = True, "pre-6.7 kernel: legacy cells for every provider"
    return CellRules(legacy_cells=legacy, reason=reason, access=access, fixup=fixup,
                     of_node_used=of_node_used, series=series)
