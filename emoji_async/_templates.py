"""The provider's 20 expression templates (``driven_id``), in one table.

The ids, their series and the length of the video each one produces live here
and nowhere else: the client validates against this table, the simulator
renders and bills from it, and a provider change is a one-line edit.

The English glosses are readings of the pinyin, not the provider's words. The
per-template video lengths are inferred (the provider documents only "up to
5 s, the length follows the template"); correct them here when it changes.
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "MAX_VIDEO_SECONDS",
    "TEMPLATES",
    "Template",
    "TemplateInfo",
    "template_info",
    "templates",
]

#: The longest video any template produces, in whole (billed) seconds.
MAX_VIDEO_SECONDS = 5


class Template(enum.StrEnum):
    """A known ``driven_id``: the expression the portrait is animated with."""

    MENGWA_KAIXIN = "mengwa_kaixin"
    MENGWA_DENGYAN = "mengwa_dengyan"
    MENGWA_GANDONG = "mengwa_gandong"
    MENGWA_RENZHEN_1 = "mengwa_renzhen_1"
    MENGWA_JIDONG = "mengwa_jidong"
    MENGWA_KUN_1 = "mengwa_kun_1"
    MENGWA_JIAOXIE = "mengwa_jiaoxie"
    DAGONG_KAIXIN = "dagong_kaixin"
    DAGONG_YANGWANG = "dagong_yangwang"
    DAGONG_KUNHUO = "dagong_kunhuo"
    DAGONG_ZHUAKUANG = "dagong_zhuakuang"
    DAGONG_WUNAI = "dagong_wunai"
    DAGONG_WEIXIAO = "dagong_weixiao"
    DAGONG_GANJI = "dagong_ganji"
    JINGDIAN_TIAOPI = "jingdian_tiaopi"
    JINGDIAN_DEYI_1 = "jingdian_deyi_1"
    JINGDIAN_QIDAI = "jingdian_qidai"
    JINGDIAN_LANDUO_1 = "jingdian_landuo_1"
    JINGDIAN_XIANQI = "jingdian_xianqi"
    JINGDIAN_LEI = "jingdian_lei"


@attrs.frozen
class TemplateInfo:
    """What a template is: its id, series, an English gloss and its video length."""

    template: Template
    series: str
    description: str
    video_seconds: int

    @property
    def driven_id(self) -> str:
        """The id as the wire spells it."""
        return self.template.value


def _t(template: Template, description: str, video_seconds: int) -> TemplateInfo:
    series = template.value.split("_", 1)[0]
    return TemplateInfo(template, series, description, video_seconds)


#: Every known template, in the provider's order.
TEMPLATES: tuple[TemplateInfo, ...] = (
    _t(Template.MENGWA_KAIXIN, "cute kid, happy", 3),
    _t(Template.MENGWA_DENGYAN, "cute kid, glaring", 3),
    _t(Template.MENGWA_GANDONG, "cute kid, touched", 4),
    _t(Template.MENGWA_RENZHEN_1, "cute kid, earnest", 3),
    _t(Template.MENGWA_JIDONG, "cute kid, excited", 4),
    _t(Template.MENGWA_KUN_1, "cute kid, sleepy", 5),
    _t(Template.MENGWA_JIAOXIE, "cute kid, sly", 3),
    _t(Template.DAGONG_KAIXIN, "office worker, happy", 3),
    _t(Template.DAGONG_YANGWANG, "office worker, looking up", 4),
    _t(Template.DAGONG_KUNHUO, "office worker, puzzled", 3),
    _t(Template.DAGONG_ZHUAKUANG, "office worker, frantic", 4),
    _t(Template.DAGONG_WUNAI, "office worker, helpless", 4),
    _t(Template.DAGONG_WEIXIAO, "office worker, smiling", 2),
    _t(Template.DAGONG_GANJI, "office worker, grateful", 3),
    _t(Template.JINGDIAN_TIAOPI, "classic, cheeky", 3),
    _t(Template.JINGDIAN_DEYI_1, "classic, smug", 3),
    _t(Template.JINGDIAN_QIDAI, "classic, expectant", 4),
    _t(Template.JINGDIAN_LANDUO_1, "classic, lazy", 5),
    _t(Template.JINGDIAN_XIANQI, "classic, disdain", 3),
    _t(Template.JINGDIAN_LEI, "classic, weary", 4),
)

_BY_ID = {info.driven_id: info for info in TEMPLATES}


def template_info(driven_id: str) -> TemplateInfo | None:
    """The table row for ``driven_id``, or ``None`` for an id the table does not know."""
    return _BY_ID.get(driven_id)


def templates() -> tuple[TemplateInfo, ...]:
    """Every template the provider documents, with its series, gloss and video length."""
    return TEMPLATES
