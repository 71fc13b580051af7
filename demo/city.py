"""The demo city's fixed cast: merchants with their districts and addresses, the card plans each
trade sells, the names consumers are drawn from and the words of complaints and answers.

Everything here is invented. Licence numbers are made in ``demo.history`` with the real
check character (GB 32100-2015), so the merchants register through the same validation as anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

# District code → (neighbourhood, street) pairs a shop's address is drawn from.
STREETS: dict[str, tuple[tuple[str, str], ...]] = {
    "110101": (
        ("东直门", "东直门内大街"),
        ("王府井", "王府井大街"),
        ("崇文门", "崇文门外大街"),
        ("鼓楼", "鼓楼东大街"),
    ),
    "110102": (("西单", "西单北大街"), ("金融街", "金融大街"), ("德胜门", "德胜门外大街")),
    "110105": (("望京", "阜通东大街"), ("三里屯", "三里屯路"), ("国贸", "建国门外大街"), ("双井", "广渠路")),
    "110106": (("方庄", "蒲芳路"), ("丽泽", "丽泽路"), ("草桥", "草桥东路")),
    "110107": (("鲁谷", "鲁谷路"), ("八角", "八角西街")),
    "110108": (("中关村", "中关村大街"), ("五道口", "成府路"), ("公主坟", "复兴路")),
    "110109": (("大峪", "新桥大街"), ("龙泉", "龙泉路")),
    "110111": (("良乡", "拱辰大街"), ("长阳", "长政南街")),
    "110112": (("梨园", "九棵树东路"), ("北苑", "新华大街")),
    "110113": (("后沙峪", "安华街"), ("石园", "府前街")),
    "110114": (("回龙观", "回龙观西大街"), ("天通苑", "立汤路")),
    "110115": (("黄村", "兴华大街"), ("亦庄", "荣华中路")),
    "110116": (("泉河", "青春路"), ("雁栖", "雁栖大街")),
    "110117": (("滨河", "平谷大街"), ("兴谷", "府前街")),
    "110118": (("鼓楼", "鼓楼南大街"), ("果园", "新北路")),
    "110119": (("儒林", "妫水北街"), ("百泉", "东外大街")),
}

ADDRESS_TAILS = ("1层", "B1层", "2层201室", "底商", "3号楼1层", "东侧底商", "商业楼2层")


@dataclass(frozen=True)
class Shop:
    brand: str
    category: str
    trade: str  # the menu it sells from (PLANS)
    district: str  # GB/T 2260 code
    street: int  # index into STREETS[district]
    individual: bool = False  # an individual business (个体工商户): licence code type 92, not 91


# The demo merchant comes first; the runaways are named in RUNAWAYS below.
SHOPS: tuple[Shop, ...] = (
    Shop("阳光健身", "fitness", "gym", "110105", 0),
    Shop("力健健身", "fitness", "gym", "110108", 0),
    Shop("炫动健身", "fitness", "gym", "110105", 2),
    Shop("动感单车馆", "fitness", "gym", "110102", 0),
    Shop("悦动瑜伽", "fitness", "gym", "110101", 0),
    Shop("青山攀岩馆", "fitness", "gym", "110107", 0),
    Shop("力美健身", "fitness", "gym", "110114", 0),
    Shop("飞鱼游泳馆", "fitness", "gym", "110112", 0),
    Shop("雁栖健身工作室", "fitness", "gym", "110116", 1),
    Shop("夏都滑雪训练营", "fitness", "gym", "110119", 1),
    Shop("悦容美容会所", "beauty", "beauty", "110105", 1),
    Shop("丽人美发沙龙", "beauty", "beauty", "110102", 1),
    Shop("清颜皮肤管理", "beauty", "beauty", "110101", 1),
    Shop("型色造型", "beauty", "beauty", "110108", 1, individual=True),
    Shop("指尖美甲", "beauty", "beauty", "110115", 0, individual=True),
    Shop("美丽时光美容会所", "beauty", "beauty", "110108", 2),
    Shop("发艺坊", "beauty", "beauty", "110111", 0, individual=True),
    Shop("馨怡养生美容", "beauty", "beauty", "110117", 0),
    Shop("启航英语", "education", "school", "110108", 0),
    Shop("小天才编程", "education", "school", "110115", 1),
    Shop("墨香书法", "education", "school", "110102", 2),
    Shop("音悦钢琴", "education", "school", "110114", 1),
    Shop("思维数学", "education", "school", "110112", 1),
    Shop("博学少儿英语", "education", "school", "110106", 0),
    Shop("童画美术", "education", "school", "110113", 1),
    Shop("跃龙武术", "education", "school", "110109", 0),
    Shop("老北京炸酱面馆", "catering", "restaurant", "110101", 2, individual=True),
    Shop("和记茶餐厅", "catering", "restaurant", "110105", 0),
    Shop("鲜果时光", "catering", "restaurant", "110107", 1, individual=True),
    Shop("京味烤鸭", "catering", "restaurant", "110106", 1),
    Shop("妫水人家农家菜", "catering", "restaurant", "110119", 0, individual=True),
    Shop("果园烘焙坊", "catering", "restaurant", "110118", 1),
    Shop("长阳包子铺", "catering", "restaurant", "110111", 1, individual=True),
    Shop("胡同咖啡", "catering", "restaurant", "110101", 3),
    Shop("洁净洗衣", "laundry", "laundry", "110106", 2),
    Shop("衣之家干洗", "laundry", "laundry", "110114", 0, individual=True),
    Shop("净衣坊", "laundry", "laundry", "110113", 0, individual=True),
    Shop("快洁洗衣", "laundry", "laundry", "110109", 1, individual=True),
    Shop("福奈干洗", "laundry", "laundry", "110116", 0),
    Shop("洁丽雅洗衣", "laundry", "laundry", "110117", 1),
    Shop("衣点洁", "laundry", "laundry", "110112", 0),
    Shop("宠爱宠物美容", "other", "pet", "110108", 1),
    Shop("悠然足疗", "other", "massage", "110105", 3),
    Shop("安心家政", "other", "housekeeping", "110102", 0),
    Shop("光影摄影", "other", "photo", "110118", 0),
    Shop("爱车洗车", "other", "carwash", "110115", 1, individual=True),
    Shop("星辰台球俱乐部", "other", "billiards", "110107", 0),
)

DEMO_SHOP = "阳光健身"
# Three merchants that run the pattern which precedes a runaway, each with its discount blitz.
RUNAWAYS = ("炫动健身", "美丽时光美容会所", "博学少儿英语")
CLOSING_SHOP = "福奈干洗"  # announced its closure lawfully a few days ago


@dataclass(frozen=True)
class Plan:
    name: str
    kind: str
    price: int  # fen
    face_value: int | None = None
    unit_price: int | None = None
    sessions: int | None = None
    days: int | None = None
    refund_fee_bps: int = 0


def _sv(name: str, price: int, face_value: int, unit_price: int, fee: int = 0) -> Plan:
    return Plan(name, "stored_value", price, face_value=face_value, unit_price=unit_price, refund_fee_bps=fee)


def _sp(name: str, price: int, sessions: int, fee: int = 0) -> Plan:
    return Plan(name, "session_pack", price, sessions=sessions, refund_fee_bps=fee)


def _pp(name: str, price: int, days: int, fee: int = 0) -> Plan:
    return Plan(name, "period_pass", price, days=days, refund_fee_bps=fee)


# What each trade sells. Prices are within the national cap (¥5,000) and education plans within
# 60 class hours and 92 days; a merchant's prices are these scaled by its own price level.
PLANS: dict[str, tuple[Plan, ...]] = {
    "gym": (
        _sv("储值卡 充2000送200", 200_000, 220_000, 8_800, fee=500),
        _sp("私教课 12节", 360_000, 12, fee=1000),
        _pp("季卡 90天", 159_900, 90, fee=800),
    ),
    "beauty": (
        _sv("会员储值卡 充1000送200", 100_000, 120_000, 6_800, fee=500),
        _sp("面部护理疗程 10次", 268_000, 10, fee=1000),
        _sp("洗剪吹 12次卡", 57_600, 12),
    ),
    "school": (
        _sp("春季班 48课时", 384_000, 48, fee=1000),
        _sp("一对一辅导 20课时", 400_000, 20, fee=1000),
        _pp("寒暑假集训 30天", 198_000, 30, fee=500),
    ),
    "restaurant": (
        _sv("储值卡 充500送50", 50_000, 55_000, 2_800),
        _sp("工作日午餐 20次", 56_000, 20),
        _pp("早餐月卡 30天", 29_900, 30),
    ),
    "laundry": (
        _sv("洗衣储值卡 充300送60", 30_000, 36_000, 1_500),
        _sp("干洗 10件卡", 28_000, 10),
    ),
    "pet": (
        _sp("宠物洗护 10次", 128_000, 10, fee=500),
        _sv("宠物储值卡 充1000送100", 100_000, 110_000, 6_800, fee=500),
    ),
    "massage": (
        _sv("足疗储值卡 充2000送300", 200_000, 230_000, 12_800, fee=500),
        _sp("足疗 10次", 158_000, 10, fee=500),
    ),
    "housekeeping": (_sp("日常保洁 10次", 150_000, 10, fee=500),),
    "photo": (_sv("写真储值卡 充3000送500", 300_000, 350_000, 39_900, fee=1000),),
    "carwash": (
        _pp("洗车月卡 30天", 19_900, 30),
        _sp("精洗 10次", 39_800, 10),
    ),
    "billiards": (
        _sv("台球储值卡 充500送100", 50_000, 60_000, 3_000),
        _pp("畅打季卡 90天", 99_900, 90),
    ),
}

# The blitz each runaway launches 30 days before today: stored value at half its face value, with
# the highest refund fee the rules allow.
BLITZ_PLANS: dict[str, Plan] = {
    "炫动健身": _sv("周年庆 充1000得2000", 100_000, 200_000, 8_800, fee=2000),
    "美丽时光美容会所": _sv("限时五折 充1500得3000", 150_000, 300_000, 6_800, fee=2000),
    "博学少儿英语": _sv("学费卡 充2000抵4000", 200_000, 400_000, 15_000, fee=2000),
}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
_TWO_CHARACTER_NAMES = (
    "秀英秀兰桂英浩然子涵欣怡梓萱宇轩思远雨桐一诺佳怡俊杰晓东建国海燕雪梅志强晨曦嘉怡博文诗涵晓峰婷婷文静天宇"
)
GIVEN_NAMES = (
    *"伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚鹏琳悦倩",
    *(_TWO_CHARACTER_NAMES[n : n + 2] for n in range(0, len(_TWO_CHARACTER_NAMES), 2)),
)

COMPLAINT_TEXTS: dict[str, tuple[str, ...]] = {
    "service_quality": (
        "教练经常迟到，课程时间被压缩。",
        "服务态度差，和办卡时承诺的不一样。",
        "护理做得很敷衍，皮肤还过敏了。",
        "衣服洗完有污渍没洗掉，要求重洗被拒绝。",
    ),
    "refund_refused": (
        "要求退卡，商家以各种理由拖延不办理。",
        "冷静期内申请退款，店员说要扣手续费。",
        "剩余余额想退，商家说储值卡一律不退。",
    ),
    "contract_terms": (
        "合同里写着“最终解释权归本店所有”，条款不公平。",
        "办卡时没有告知有效期，现在说已经过期。",
    ),
    "service_unavailable": (
        "门店这两周一直关门，电话也打不通。",
        "老师全部离职，课程停了也没有通知。",
        "预约不上，前台说暂停营业，什么时候恢复不知道。",
        "到店发现卷帘门拉着，门上贴着装修通知，已经半个月了。",
    ),
    "closure": (
        "听说老板要跑路了，卡里还有两千多没用。",
        "门店突然搬空，会员群也解散了。",
    ),
    "misleading_sales": (
        "店员推销“充一千得两千”，说名额有限逼着当场付款。",
        "办卡时承诺随时可约，办完后一直约不上。",
        "宣传单上的五折活动，付款后说要另加服务费。",
    ),
}

RESPONSES = (
    "您好，已与您电话沟通，我们会安排店长跟进处理，给您带来不便深表歉意。",
    "已核实情况，本周内为您补上课程，并赠送一次服务作为补偿。",
    "退款已按合同约定办理，请留意平台退款通知。",
    "感谢反馈，已对相关员工进行培训，欢迎您再次到店体验。",
)

RESOLUTIONS = (
    "经调解，双方达成一致，商家已补偿消费者。",
    "商家已按规定办理退款，投诉人表示满意。",
    "经核实，商家已整改，结案。",
)
